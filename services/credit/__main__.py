from libs.common.service import serve
from services.credit.app import create_app
from services.credit.settings import CreditSettings

settings = CreditSettings()
serve(create_app(settings), settings)
