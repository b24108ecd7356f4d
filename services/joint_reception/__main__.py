import sys

from services.joint_reception.app import build_app
from services.joint_reception.domain.centre import CentreConfigError
from shared.runtime import main

try:
    main("joint_reception", build_app)
except CentreConfigError as e:
    sys.exit(f"联合接访中心配置有误 centre config invalid: {e}")
