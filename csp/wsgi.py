import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csp.settings")
application = get_wsgi_application()

from csp.chunked import ChunkedBodyMiddleware  # noqa: E402  (needs the settings set up above)

application = ChunkedBodyMiddleware(application)
