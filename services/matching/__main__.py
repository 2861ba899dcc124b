from libs.common.service import serve
from services.matching.app import create_app
from services.matching.settings import MatchingSettings

settings = MatchingSettings()
serve(create_app(settings), settings)
