"""R4 Subscriptions Backport for PAS: read a rest-hook, full-resource Subscription, and build
the notification Bundle (type history: a SubscriptionStatus Parameters first, then the full
PAS response bundle of the decided request).

Only what PAS needs is accepted: channel.type rest-hook, an http(s) endpoint, payload
application/fhir+json with content full-resource. Problems name the element, like the bundle
checks do.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B.subscription import Subscription
from pydantic import ValidationError

from priorauth.adapters.fhir.problems import Problem, problems_from_validation
from priorauth.sizes import SUBSCRIPTION_ENDPOINT

__all__ = [
    "PAS_TOPIC",
    "PAYLOAD_CONTENT",
    "SubscriptionRequest",
    "notification_bundle",
    "read_subscription",
]

PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
PAYLOAD_CONTENT = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
)
_FILTER = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
)
_STATUS_PROFILE = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """A Subscription that passed the checks: where to deliver, and the resource as sent."""

    endpoint: str
    headers: tuple[str, ...]
    resource: dict[str, Any]


def read_subscription(data: object) -> SubscriptionRequest | list[Problem]:
    """Check a Subscription (parsed JSON) for what PAS notifications need."""
    if not isinstance(data, dict) or data.get("resourceType") != "Subscription":
        return [Problem("Subscription", "fatal", "expected a Subscription resource", "structure")]
    try:
        subscription = Subscription.model_validate(data)
    except ValidationError as exc:
        return problems_from_validation("Subscription", exc)
    except Exception as exc:  # the library's own failures on odd input: report, never crash
        message = f"the Subscription could not be read ({exc.__class__.__name__})"
        return [Problem("Subscription", "error", message, "structure")]
    problems: list[Problem] = []
    channel = subscription.channel
    if channel.type != "rest-hook":
        problems.append(
            Problem("Subscription.channel.type", "error", "only rest-hook is supported", "value")
        )
    endpoint = str(channel.endpoint or "")
    parts = urlsplit(endpoint)
    if len(endpoint) > SUBSCRIPTION_ENDPOINT:
        problems.append(
            Problem(
                "Subscription.channel.endpoint",
                "error",
                f"an endpoint has at most {SUBSCRIPTION_ENDPOINT} characters",
                "too-long",
            )
        )
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            Problem(
                "Subscription.channel.endpoint",
                "error",
                "a rest-hook needs an http or https endpoint",
                "required" if not endpoint else "value",
            )
        )
    if channel.payload not in (None, "application/fhir+json", "application/json"):
        problems.append(
            Problem(
                "Subscription.channel.payload",
                "error",
                "notifications are sent as application/fhir+json",
                "not-supported",
            )
        )
    content = None
    payload_ext = channel.payload__ext
    for extension in (payload_ext.extension or ()) if payload_ext else ():
        if extension.url == PAYLOAD_CONTENT:
            content = extension.valueCode
    if content not in (None, "full-resource"):
        problems.append(
            Problem(
                "Subscription.channel.payload.extension",
                "error",
                "PAS notifications carry the full resource (payload content full-resource)",
                "not-supported",
            )
        )
    if subscription.criteria not in (PAS_TOPIC,):
        problems.append(
            Problem(
                "Subscription.criteria",
                "error",
                f"the topic offered is {PAS_TOPIC}",
                "not-supported",
            )
        )
    if problems:
        return problems
    return SubscriptionRequest(endpoint, tuple(h for h in channel.header or () if h), data)


def notification_bundle(
    subscription_id: str,
    event_number: int,
    response_bundle: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """An event-notification Bundle carrying the full PAS response bundle."""
    claim_response = response_bundle["entry"][0]["resource"]
    focus = f"ClaimResponse/{claim_response.get('id', 'claim-response')}"
    status = {
        "resourceType": "Parameters",
        "id": uuid.uuid4().hex,
        "meta": {"profile": [_STATUS_PROFILE]},
        "parameter": [
            {
                "name": "subscription",
                "valueReference": {"reference": f"Subscription/{subscription_id}"},
            },
            {"name": "topic", "valueCanonical": PAS_TOPIC},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": str(event_number)},
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(event_number)},
                    {"name": "timestamp", "valueInstant": now.isoformat()},
                    {"name": "focus", "valueReference": {"reference": focus}},
                ],
            },
        ],
    }
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "history",
        "timestamp": now.isoformat(),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{status['id']}",
                "resource": status,
                "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
                "response": {"status": "200"},
            },
            {
                "fullUrl": f"urn:uuid:{response_bundle.get('id') or uuid.uuid4().hex}",
                "resource": response_bundle,
                "request": {"method": "POST", "url": "Bundle"},
                "response": {"status": "201"},
            },
        ],
    }
