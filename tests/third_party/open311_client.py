"""Checks a running veche server's Open311 GeoReport v2 endpoints as a plain Open311 client does.

Open311 clients (the PyPI `open311` package, FixMyStreet's sender) speak XML over plain HTTP:
GET the service list and a service definition, GET the request list with filters, and POST a
new request as an `application/x-www-form-urlencoded` form carrying the `api_key`, reading the
answer's `<service_request_id>`. This script does the same with the standard library only
(urllib and xml.etree), so nothing of veche's own code parses what veche serves. Exits non-zero
on the first disagreement.

Usage: python open311_client.py BASE_URL API_KEY SERVICE_CODE
"""

import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree

ROOT = "/open311/v2/"


def get(base: str, path: str, query: dict | None = None) -> ElementTree.Element:
    """GETs an Open311 XML document and parses it."""
    url = base + ROOT + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, (url, response.status)
        assert response.headers.get_content_type() == "text/xml", response.headers
        return ElementTree.fromstring(response.read())


def post(base: str, path: str, form: dict) -> tuple[int, ElementTree.Element]:
    """POSTs a form as Open311 clients do; the status and the parsed XML answer, errors too."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        base + ROOT + path,
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, ElementTree.fromstring(response.read())
    except urllib.error.HTTPError as error:
        return error.code, ElementTree.fromstring(error.read())


def request_ids(document: ElementTree.Element) -> list[str]:
    assert document.tag == "service_requests", document.tag
    return [request.findtext("service_request_id") for request in document.findall("request")]


def main(base: str, api_key: str, service_code: str) -> None:
    discovery = get(base, "discovery.xml")
    formats = [element.text for element in discovery.iter("format")]
    assert "text/xml" in formats and "application/json" in formats, formats

    services = get(base, "services.xml")
    assert services.tag == "services", services.tag
    codes = [service.findtext("service_code") for service in services.findall("service")]
    assert service_code in codes, codes

    definition = get(base, f"services/{service_code}.xml")
    assert definition.findtext("service_code") == service_code
    attributes = {
        attribute.findtext("code"): attribute.findtext("required")
        for attribute in definition.find("attributes").findall("attribute")
    }
    assert attributes.get("district") == "true", attributes

    form = {
        "api_key": api_key,
        "service_code": service_code,
        "lat": "55.7558261",
        "long": "37.6176112",
        "address_string": "Red Square 1",
        "description": "A pothole by the museum entrance",
        "email": "resident@mail.example",
        "first_name": "Ivan",
        "last_name": "Petrov",
        "phone": "+7 900 000-00-00",
        "attribute[district]": "Tverskoy",
    }
    status, wrong = post(base, "requests.xml", dict(form, api_key="0" * 64))
    assert status == 403, status
    assert wrong.tag == "errors" and wrong.find("error").findtext("code") == "403"

    status, created = post(base, "requests.xml", form)
    assert status in (200, 201), (status, ElementTree.tostring(created))
    [new_id] = request_ids(created)
    assert new_id and new_id.isdigit(), new_id

    [request] = get(base, "requests.xml", {"service_request_id": new_id}).findall("request")
    assert request.findtext("status") == "open"
    assert request.findtext("description") == form["description"]
    assert request.findtext("address") == form["address_string"]
    assert request.findtext("lat") == "55.756", request.findtext("lat")

    filtered = get(
        base,
        "requests.xml",
        {"service_code": service_code, "status": "open", "start_date": "2000-01-01T00:00:00Z"},
    )
    assert new_id in request_ids(filtered)
    assert request_ids(get(base, "requests.xml", {"status": "closed"})) == []
    empty = {"start_date": "2000-01-02T00:00:00Z", "end_date": "2000-01-01T00:00:00Z"}
    assert request_ids(get(base, "requests.xml", empty)) == []
    assert request_ids(get(base, f"requests/{new_id}.xml")) == [new_id]
    print(f"open311 client: services, definition, filters and a gateway filing (request {new_id}) agree")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3])
