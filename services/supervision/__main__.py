from services.supervision.app import build_app
from shared.runtime import main

main("supervision", build_app)
