from libs.common.service import serve
from services.needs.app import create_app
from services.needs.settings import NeedsSettings

settings = NeedsSettings()
serve(create_app(settings), settings)
