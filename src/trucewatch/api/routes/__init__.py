"""The API's routes, one ``APIRouter`` a concern; :func:`trucewatch.api.app.create_app`
includes them under ``/api/v1`` in this order (the OpenAPI document's order)."""
