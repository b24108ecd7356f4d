"""Generated gRPC stubs (`make proto`, from proto/ with -I proto; never edited by hand, not committed).

grpc_tools writes absolute imports (`from lianfang.v1 import case_pb2`), so this folder is put on
sys.path; import the stubs as `from shared.pb import case_pb2, case_pb2_grpc`."""
import sys
from pathlib import Path

_here = str(Path(__file__).parent)
if _here not in sys.path:
    sys.path.append(_here)

from lianfang.v1 import assignment_pb2, assignment_pb2_grpc, case_pb2, case_pb2_grpc  # noqa: E402

__all__ = ["assignment_pb2", "assignment_pb2_grpc", "case_pb2", "case_pb2_grpc"]
