"""Generated gRPC stubs (`make proto`, from proto/ with -I proto; never edited by hand, not committed).

grpc_tools writes absolute imports (`from lianfang.v1 import case_pb2`), so this folder is put on
sys.path, and every generated module is re-exported: `from shared.pb import case_pb2, case_pb2_grpc`."""
import importlib
import sys
from pathlib import Path

_here = Path(__file__).parent
if str(_here) not in sys.path:
    sys.path.append(str(_here))

for _module in sorted((_here / "lianfang" / "v1").glob("*_pb2*.py")):
    globals()[_module.stem] = importlib.import_module(f"lianfang.v1.{_module.stem}")
