"""A multipart/form-data import request: the `file` part and the form's fields."""
from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from chalice.app import Request

from functions.imports.schemas import ImportCreate
from functions.imports.service import Upload
from layers.http.requests import validate
from shared.errors import BadRequest, ValidationFailed


def multipart_form(request: Request) -> tuple[ImportCreate, Upload]:
    """The form's fields as an ImportCreate and its `file` part (the body is within the API's limit)."""
    content_type = request.headers.get("content-type", "")
    raw = request.raw_body or b""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise BadRequest("the multipart body cannot be read (is the boundary right?)")
    fields: dict[str, str] = {}
    upload: Upload | None = None
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(content, bytes):
            continue
        if name == "file":
            upload = Upload(file_name=part.get_filename(), content=content)
        else:
            fields[name] = content.decode("utf-8", errors="replace")
    if upload is None:
        raise ValidationFailed("the form has no `file` part", errors=[
            {"field": "file", "message": "required", "code": "missing"}])
    return validate(ImportCreate, fields), upload
