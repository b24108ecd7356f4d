import sys

from services.legal_referral.app import build_app
from services.legal_referral.domain.channels import ChannelFileError
from shared.runtime import main

try:
    main("legal_referral", build_app)
except ChannelFileError as e:
    sys.exit(f"legal channels invalid: {e}")
