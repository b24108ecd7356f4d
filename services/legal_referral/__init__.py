"""Legal-referral service (诉访分离): classifies 涉法涉诉 matters into legal channels with explainable
rules (infra/legal/channels.toml), refers them over gRPC to the receiving body (court, procuratorate,
人社 arbitration, 司法局 reconsideration and legal aid, 民政 relief), gives the petitioner the written
notice, and records the receiving body's progress, the 检调对接 "5+1" steps and relief decisions."""
from pathlib import Path

SERVICE_DIR = Path(__file__).parent
