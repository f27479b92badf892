"""Mailer: pacing and typed SES errors, with a fake client (no moto)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from earshot.errors import MailError, RecipientRejected, SendingUnavailable, SendThrottled
from earshot.mail.mailer import Mailer, Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_sends_to_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.wait()
    assert clock.slept == pytest.approx([0.25] * 4)
    assert clock.now == pytest.approx(101.0)


class FakeSes:
    def __init__(self, error_code: str | None = None) -> None:
        self.error_code = error_code
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error_code:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "nope"}}, "SendEmail")
        return {"MessageId": "m-1"}

    def get_account(self) -> dict[str, Any]:
        return {"SendQuota": {"MaxSendRate": 14.0}}


def test_send_uses_raw_content_the_configuration_set_and_tags() -> None:
    ses = FakeSes()
    mailer = Mailer(ses, configuration_set="earshot", sender="Earshot <d@e.example>")
    assert mailer.send_raw(b"raw", to="a@example.com", tags={"topic": "t"}) == "m-1"
    call = ses.calls[0]
    assert call["Content"] == {"Raw": {"Data": b"raw"}}
    assert call["Destination"] == {"ToAddresses": ["a@example.com"]}
    assert call["ConfigurationSetName"] == "earshot"
    assert call["EmailTags"] == [{"Name": "topic", "Value": "t"}]
    assert mailer.max_send_rate() == 14.0


@pytest.mark.parametrize("code, error", [
    ("TooManyRequestsException", SendThrottled), ("LimitExceededException", SendThrottled),
    ("MessageRejected", RecipientRejected), ("SendingPausedException", SendingUnavailable),
    ("AccountSuspendedException", SendingUnavailable), ("SomethingNew", MailError),
])
def test_ses_errors_are_typed(code: str, error: type[MailError]) -> None:
    mailer = Mailer(FakeSes(code), configuration_set="earshot", sender="d@e.example")
    with pytest.raises(error) as raised:
        mailer.send_raw(b"raw", to="a@example.com")
    assert type(raised.value) is error
