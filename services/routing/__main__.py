import sys

from services.routing.app import build_app
from services.routing.domain.rules import RuleError
from shared.runtime import main

try:
    main("routing", build_app)
except RuleError as e:
    sys.exit(f"routing rules invalid: {e}")
