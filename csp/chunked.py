"""Request bodies sent with `Transfer-Encoding: chunked` and no Content-Length.

Streaming HTTP clients (a generator body in `requests`, many SDKs) send the length this way.
gunicorn decodes the chunks, but Django reads exactly CONTENT_LENGTH bytes of a request body and
treats a missing length as an empty body, so such a batch of events would be refused as empty.
This WSGI wrapper reads the decoded body first, at most DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes
(enough for the views to answer 413 to anything larger), and passes it on with its length.
"""

import io

from django.conf import settings


class ChunkedBodyMiddleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)
