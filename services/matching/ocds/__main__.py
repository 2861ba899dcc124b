from services.matching.ocds.cli import app

app()
