from services.intake.app import build_app
from shared.runtime import main

main("intake", build_app)
