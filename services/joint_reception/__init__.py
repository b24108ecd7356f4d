"""Joint reception service (联合接访): one hall, many agencies, one case.

On the petition-bureau node that hosts a centre: 一厅式接待 (tickets registered through the node's
intake and queued at the right agency's window), 联合调处 (joint sessions: invitations over gRPC,
answers, agreed commitments and the one-time notice), 听证, the duty roster and leader reception days.
On every node: its windows' view of the centre and the invitations it receives."""
from pathlib import Path

SERVICE_DIR = Path(__file__).parent
