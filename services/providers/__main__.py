from libs.common.service import serve
from services.providers.app import create_app
from services.providers.settings import ProvidersSettings

settings = ProvidersSettings()
serve(create_app(settings), settings)
