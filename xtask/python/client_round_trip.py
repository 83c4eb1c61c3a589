"""A round trip through Tandem's API with a client generated from its OpenAPI document by
openapi-python-client (a mainstream generator): put, get, a conditional put that holds and one
that does not, a list, a delete, then a 404 and a 400. `cargo xtask test` generates the client
from a live region's /api/openapi.json and runs this against that region.

Usage: client_round_trip.py <directory holding the generated package> <region base URL>
"""

import sys

sys.path.insert(0, sys.argv[1])
base_url = sys.argv[2]

from tandem_client import Client  # noqa: E402
from tandem_client.api.items import delete_item, get_item, list_items, put_item  # noqa: E402
from tandem_client.models import ErrorBody, ItemResponse, ListResponse, PutBody, PutBodyData  # noqa: E402

client = Client(base_url=base_url)


def body(**data):
    return PutBody(data=PutBodyData.from_dict(data))


def expect(response, status, kind):
    assert response.status_code == status, (response.status_code, response.content)
    assert kind is None or isinstance(response.parsed, kind), response.parsed
    return response


created = expect(put_item.sync_detailed("round-trip", client=client, body=body(n=1)), 201, ItemResponse)
assert created.parsed.item.data.to_dict() == {"n": 1}, created.parsed.item.data
first = created.headers["etag"]

read = expect(get_item.sync_detailed("round-trip", client=client), 200, ItemResponse)
assert read.parsed.item.version == 1 and read.parsed.region, read.parsed

held = put_item.sync_detailed("round-trip", client=client, body=body(n=2), if_match=first)
assert expect(held, 200, ItemResponse).parsed.item.version == 2

stale = put_item.sync_detailed("round-trip", client=client, body=body(n=3), if_match=first)
assert expect(stale, 412, ErrorBody).parsed.error.code.value == "precondition_failed"

page = expect(list_items.sync_detailed(client=client, limit=10), 200, ListResponse)
assert "round-trip" in [item.id for item in page.parsed.items], page.parsed

expect(delete_item.sync_detailed("round-trip", client=client), 204, None)
gone = expect(get_item.sync_detailed("round-trip", client=client), 404, ErrorBody)
assert gone.parsed.error.code.value == "not_found"

bad = expect(put_item.sync_detailed("not an id", client=client, body=body()), 400, ErrorBody)
assert bad.parsed.error.code.value == "invalid_id"

print("generated client: put, get, conditional put (200 and 412), list, delete, 404 and 400: ok")
