"""Mailer: pacing, typed SES errors and what a failed send can mean, with a fake client (no moto)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from earshot.errors import (
    MailError,
    MailUnreachable,
    RecipientRejected,
    SendingUnavailable,
    SendOutcomeUnknown,
    SendThrottled,
)
from earshot.mail.mailer import SEND_CLIENT_CONFIG, Mailer, Pacer


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
    mailer = Mailer(FakeSes(code), configuration_set="earshot", sender="d@e.example", sleep=lambda _: None)
    with pytest.raises(error) as raised:
        mailer.send_raw(b"raw", to="a@example.com")
    assert type(raised.value) is error


# SES answers MessageRejected for a sender it will not send as, too; only a refusal of
# the message itself is the recipient's fault (real SES messages, abbreviated).
@pytest.mark.parametrize("message, error", [
    ("Email address is not verified. The following identities failed the check in region US-EAST-1: "
     "digest@example.org", SendingUnavailable),
    ("Email address is not verified. The following identities failed the check in region EU-WEST-1: "
     "reader@example.com", SendingUnavailable),  # the sandbox: recipients must be verified too
    ("Sending paused for this account. For more information, please check the AWS Health Dashboard.",
     SendingUnavailable),
    ("Your account is in the sandbox; you can only send to verified identities.", SendingUnavailable),
    ("Message length is more than 40 MB.", RecipientRejected),
    ("Illegal address", RecipientRejected),
])
def test_message_rejected_is_typed_by_what_it_is_about(message: str, error: type[MailError]) -> None:
    class Rejecting(FakeSes):
        def send_email(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": message}}, "SendEmail")

    with pytest.raises(error) as raised:
        Mailer(Rejecting(), configuration_set="earshot", sender="d@example.org").send_raw(b"raw", to="a@example.com")
    assert type(raised.value) is error


class FakeAccount(FakeSes):
    def __init__(self, *, verified: bool = True, sending: bool = True, production: bool = True,
                 missing: bool = False) -> None:
        super().__init__()
        self.verified, self.sending, self.production, self.missing = verified, sending, production, missing
        self.asked: list[str] = []

    def get_email_identity(self, EmailIdentity: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.asked.append(EmailIdentity)
        if self.missing:
            raise ClientError({"Error": {"Code": "NotFoundException", "Message": f"{EmailIdentity} not found"}},
                              "GetEmailIdentity")
        return {"IdentityType": "DOMAIN", "VerifiedForSendingStatus": self.verified,
                "VerificationStatus": "SUCCESS" if self.verified else "PENDING"}

    def get_account(self) -> dict[str, Any]:
        return {"SendingEnabled": self.sending, "ProductionAccessEnabled": self.production,
                "EnforcementStatus": "HEALTHY" if self.sending else "SHUTDOWN", "SendQuota": {"MaxSendRate": 14.0}}


@pytest.mark.parametrize("account, sender, code", [
    (FakeAccount(verified=False), "Earshot <digest@example.org>", "IdentityNotVerified"),
    (FakeAccount(missing=True), "Earshot <digest@example.org>", "NotFoundException"),
    (FakeAccount(sending=False), "Earshot <digest@example.org>", "SendingPaused"),
    (FakeAccount(), "Earshot <digest@other.example>", "SenderNotCovered"),
])
def test_ensure_can_send_refuses_a_sender_ses_will_not_send_as(account: FakeAccount, sender: str, code: str) -> None:
    with pytest.raises(SendingUnavailable) as raised:
        Mailer(account, configuration_set="earshot", sender=sender).ensure_can_send("example.org")
    assert raised.value.details["code"] == code
    assert not account.calls  # nothing was sent


def test_ensure_can_send_passes_a_verified_identity_even_in_the_sandbox(caplog: pytest.LogCaptureFixture) -> None:
    account = FakeAccount(production=False)
    Mailer(account, configuration_set="earshot", sender="Earshot <digest@news.example.org>").ensure_can_send(
        "example.org")
    assert account.asked == ["example.org"]
    assert "sandbox" in caplog.text


# ------------------------------------------------------------------ what a failed send can mean
class Scripted(FakeSes):
    """Raises the scripted exceptions, one per call, then sends."""

    def __init__(self, *failures: Exception) -> None:
        super().__init__()
        self.failures = list(failures)

    def send_email(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.failures:
            raise self.failures.pop(0)
        return {"MessageId": "m-ok"}


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "SendEmail")


def _mailer(client: Scripted, slept: list[float]) -> Mailer:
    return Mailer(FakeSes(), send_client=client, configuration_set="earshot", sender="d@e.example",
                  sleep=slept.append)


@pytest.mark.parametrize("failure, error", [
    (ReadTimeoutError(endpoint_url="https://email.example"), SendOutcomeUnknown),
    (ConnectionClosedError(endpoint_url="https://email.example"), SendOutcomeUnknown),
    (_error("InternalFailure", 500), SendOutcomeUnknown),
    (_error("MessageRejected", 400), RecipientRejected),
], ids=["read-timeout", "connection-closed", "internal-error-500", "rejected"])
def test_a_send_that_may_have_gone_or_was_refused_is_never_tried_again(failure: Exception,
                                                                       error: type[MailError]) -> None:
    client, slept = Scripted(failure, failure, failure), []
    with pytest.raises(error):
        _mailer(client, slept).send_raw(b"raw", to="a@example.com")
    assert len(client.calls) == 1 and slept == []


@pytest.mark.parametrize("failure, error", [
    (_error("TooManyRequestsException", 429), SendThrottled),
    (_error("ServiceUnavailable", 503), SendThrottled),
    (EndpointConnectionError(endpoint_url="https://email.example"), MailUnreachable),
    (ConnectTimeoutError(endpoint_url="https://email.example"), MailUnreachable),
], ids=["throttled", "unavailable-503", "no-connection", "connect-timeout"])
def test_a_send_that_certainly_did_not_go_is_tried_twice_more(failure: Exception, error: type[MailError]) -> None:
    # two failures, then SES takes it: one mail, after the two pauses
    client, slept = Scripted(failure, failure), []
    assert _mailer(client, slept).send_raw(b"raw", to="a@example.com") == "m-ok"
    assert len(client.calls) == 3 and slept == [0.2, 1.0]
    # three failures: given up, typed as "nothing was sent"
    client, slept = Scripted(failure, failure, failure), []
    with pytest.raises(error):
        _mailer(client, slept).send_raw(b"raw", to="a@example.com")
    assert len(client.calls) == 3


def test_the_send_client_makes_one_attempt_per_call() -> None:
    assert SEND_CLIENT_CONFIG.retries == {"total_max_attempts": 1, "mode": "standard"}
