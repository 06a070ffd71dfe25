"""Realistic synthetic traffic for the demo, the benchmarks and the end-to-end tests.

``generate`` is pure and seeded: the same arguments give the same events (including IDs), so
loading the demo twice never duplicates anything. Every event is a keyword dict for
``Emitter.emit``; raw payloads deliberately carry the kind of data real services leak (emails,
phones, cards, tokens in URLs, passwords, addresses) so the redaction is exercised for real.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FIRST = [
    "maria",
    "liam",
    "sofia",
    "noah",
    "aiko",
    "omar",
    "lena",
    "mateo",
    "chloe",
    "ravi",
    "ines",
    "jonas",
    "fatima",
    "lucas",
    "mei",
    "tomas",
    "amara",
    "felix",
    "zoe",
    "ivan",
]
LAST = [
    "santos",
    "okafor",
    "schmidt",
    "nguyen",
    "garcia",
    "kowalski",
    "tanaka",
    "dubois",
    "rossi",
    "haddad",
    "larsen",
    "moreau",
    "silva",
    "novak",
    "cohen",
    "patel",
]
DOMAINS = ["gmail.com", "outlook.com", "proton.me", "example.co.uk", "mail.acme-corp.com"]
CITIES = [("Lisbon", "PT"), ("Berlin", "DE"), ("Austin", "US"), ("Lyon", "FR"), ("Leeds", "GB")]
PHONES = ["+14155550167", "+447700900123", "+4915123456789", "+33612345678", "+351912345678"]
CARDS = ["4242424242424242", "5555555555554444", "4000056655665556", "378282246310005"]


@dataclass
class DemoTraffic:
    """Events to emit (oldest first) and the trace IDs worth opening first."""

    events: list[dict[str, Any]] = field(default_factory=list)
    highlights: dict[str, str] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)


class _Gen:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.now = now
        self.out = DemoTraffic()

    def _id(self, prefix: str, nbytes: int = 10) -> str:
        raw = self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")
        return prefix + base64.b32encode(raw).decode().lower().rstrip("=")

    def person(self, customer_id: str) -> dict[str, Any]:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        city, country = self.rng.choice(CITIES)
        return {
            "customer_id": customer_id,
            "email": f"{first}.{last}{self.rng.randint(1, 99)}@{self.rng.choice(DOMAINS)}",
            "name": f"{first.title()} {last.title()}",
            "phone": self.rng.choice(PHONES),
            "address": {
                "line1": f"{self.rng.randint(1, 200)} Harbour Street",
                "city": city,
                "postcode": f"{self.rng.randint(10000, 99999)}",
                "country": country,
            },
            "ip": f"203.0.113.{self.rng.randint(1, 254)}",
            "card": self.rng.choice(CARDS),
        }

    def ev(self, trace_id: str, type_: str, at: datetime, source: str, **kw: Any) -> None:
        self.out.events.append(
            {
                "type": type_,
                "trace_id": trace_id,
                "occurred_at": at,
                "event_id": self._id("ev_", 12),
                "source": source,
                **kw,
            }
        )

    # -- flows ---------------------------------------------------------------------------
    def signup(self, p: dict[str, Any], at: datetime, outcome: str) -> str:
        """outcome: sent | timeout_then_sent | bounce | never_started."""
        tr, req, job = self._id("tr_"), self._id("req_", 6), self._id("job_", 5)
        cid = p["customer_id"]
        self.ev(
            tr,
            "signup.submitted",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid, "request_id": req, "job_id": job},
            data={
                "email": p["email"],
                "name": p["name"],
                "password": "hunter2-" + tr[-4:],
                "plan": self.rng.choice(["free", "team", "business"]),
                "ip": p["ip"],
                "phone": p["phone"],
                "address": p["address"],
                "marketing_opt_in": True,
                "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
                "referrer": f"https://ads.example.net/c?utm_source=news&token={tr[3:]}",
            },
        )
        self.ev(
            tr,
            "account.created",
            at + timedelta(milliseconds=420),
            "api",
            actor="system",
            status="done",
            subject={"customer_id": cid, "request_id": req},
        )
        if outcome == "never_started":
            return tr
        sub = {"customer_id": cid, "job_id": job}
        mail = {
            "to": p["email"],
            "template": "signup_verification",
            "provider": "postmark",
            "headers": {"Authorization": "Bearer pm_live_" + tr[3:] * 2},
        }
        t = at + timedelta(seconds=1)
        self.ev(
            tr, "signup_email.queued", t, "api", status="queued", attempt=0, subject=sub, data=mail
        )
        self.ev(
            tr,
            "signup_email.started",
            t + timedelta(seconds=1),
            "mail-worker",
            status="running",
            attempt=1,
            subject=sub,
            data=mail,
        )
        t += timedelta(seconds=1)
        if outcome == "timeout_then_sent":
            for attempt in (2, 3):
                t += timedelta(minutes=10)
                self.ev(
                    tr,
                    "signup_email.retry",
                    t,
                    "mail-worker",
                    status="running",
                    attempt=attempt,
                    subject=sub,
                    data=mail,
                    error={
                        "code": "PROVIDER_TIMEOUT",
                        "message": f"timeout after 30s sending to {p['email']}",
                    },
                )
            self.ev(
                tr,
                "signup_email.sent",
                t + timedelta(seconds=3),
                "mail-worker",
                status="done",
                attempt=3,
                subject=sub,
                data={**mail, "provider_message_id": self._id("pm-", 8)},
            )
        elif outcome == "bounce":
            t += timedelta(minutes=4)
            self.ev(
                tr,
                "signup_email.retry",
                t,
                "mail-worker",
                status="running",
                attempt=2,
                subject=sub,
                data=mail,
                error={"code": "SMTP_421", "message": "421 try again later"},
            )
            self.ev(
                tr,
                "signup_email.bounced",
                t + timedelta(seconds=49),
                "mail-worker",
                status="failed",
                attempt=2,
                subject=sub,
                data={**mail, "smtp_response": f"550 5.1.1 <{p['email']}> unknown user"},
                error={
                    "code": "SMTP_550",
                    "message": f"550 5.1.1 <{p['email']}>: mailbox unavailable",
                },
            )
        else:
            self.ev(
                tr,
                "signup_email.sent",
                t + timedelta(seconds=2),
                "mail-worker",
                status="done",
                attempt=1,
                subject=sub,
                data=mail,
            )
        return tr

    def password_reset(self, p: dict[str, Any], at: datetime) -> str:
        tr, req, job = self._id("tr_"), self._id("req_", 6), self._id("job_", 5)
        cid = p["customer_id"]
        self.ev(
            tr,
            "password_reset.requested",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid, "request_id": req, "job_id": job},
            data={
                "email": p["email"],
                "ip": p["ip"],
                "user_agent": "Mozilla/5.0",
                "reset_url": f"https://app.example.com/reset?token={self._id('rst_', 16)}",
            },
        )
        sub = {"customer_id": cid, "job_id": job}
        mail = {"to": p["email"], "template": "password_reset", "provider": "postmark"}
        self.ev(
            tr,
            "reset_email.queued",
            at + timedelta(seconds=1),
            "api",
            status="queued",
            attempt=0,
            subject=sub,
            data=mail,
        )
        self.ev(
            tr,
            "reset_email.sent",
            at + timedelta(seconds=4),
            "mail-worker",
            status="done",
            attempt=1,
            subject=sub,
            data=mail,
        )
        return tr

    def billing_retry(self, p: dict[str, Any], at: datetime, final_ok: bool) -> str:
        tr, req, job = self._id("tr_"), self._id("req_", 6), self._id("job_", 5)
        cid, order = p["customer_id"], self._id("ord_", 5)
        card = {"brand": "visa", "number": p["card"], "exp": "12/29", "cvc": "123"}
        self.ev(
            tr,
            "payment.submitted",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid, "request_id": req, "job_id": job, "order_id": order},
            data={
                "amount": "49.00",
                "currency": "EUR",
                "card": card,
                "billing_email": p["email"],
                "invoice_id": "inv_" + order[4:],
            },
        )
        sub = {"customer_id": cid, "job_id": job, "order_id": order}
        gw = {
            "amount": "49.00",
            "currency": "EUR",
            "gateway": "stripe",
            "card": {"brand": "visa", "number": p["card"]},
        }
        t = at + timedelta(seconds=2)
        self.ev(
            tr,
            "billing_job.started",
            t,
            "billing-worker",
            status="running",
            attempt=1,
            subject=sub,
            data=gw,
        )
        for attempt in (2, 3):
            t += timedelta(hours=24)
            self.ev(
                tr,
                "billing_job.retry",
                t,
                "billing-worker",
                status="running",
                attempt=attempt,
                subject=sub,
                data=gw,
                error={"code": "CARD_DECLINED", "message": f"card {p['card']} declined"},
            )
        end = "billing_job.succeeded" if final_ok else "billing_job.failed"
        self.ev(
            tr,
            end,
            t + timedelta(seconds=5),
            "billing-worker",
            status="done" if final_ok else "failed",
            attempt=3,
            subject=sub,
            data=gw,
            error=None
            if final_ok
            else {"code": "INSUFFICIENT_FUNDS", "message": "insufficient funds on card"},
        )
        return tr

    def import_job(self, p: dict[str, Any], at: datetime, stuck: bool) -> str:
        tr, req, job = self._id("tr_"), self._id("req_", 6), self._id("job_", 5)
        cid = p["customer_id"]
        self.ev(
            tr,
            "import.requested",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid, "request_id": req, "job_id": job},
            data={
                "file_name": "contacts-2026.csv",
                "rows": 12000,
                "source": "csv",
                "api_key": "sk_live_" + self._id("", 16),
            },
        )
        sub = {"customer_id": cid, "job_id": job}
        self.ev(
            tr,
            "import_job.started",
            at + timedelta(seconds=3),
            "import-worker",
            status="running",
            attempt=1,
            subject=sub,
            data={"rows_total": 12000},
        )
        self.ev(
            tr,
            "import_job.progress",
            at + timedelta(minutes=2),
            "import-worker",
            status="running",
            attempt=1,
            subject=sub,
            data={"rows_total": 12000, "rows_done": 4000},
        )
        if not stuck:
            self.ev(
                tr,
                "import_job.done",
                at + timedelta(minutes=6),
                "import-worker",
                status="done",
                attempt=1,
                subject=sub,
                data={"rows_total": 12000, "rows_done": 12000},
            )
        return tr

    def scheduled_export(self, p: dict[str, Any], at: datetime) -> str:
        """A data export the customer asked for, set to run in the nightly batch (02:00 UTC
        after the request); it runs then, and finishes, only if that time has passed."""
        tr, req, job = self._id("tr_"), self._id("req_", 6), self._id("job_", 5)
        cid = p["customer_id"]
        run_at = (at + timedelta(days=1)).replace(hour=2, minute=0, second=0)
        if run_at - at > timedelta(days=1):
            run_at -= timedelta(days=1)
        self.ev(
            tr,
            "export.requested",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid, "request_id": req, "job_id": job},
            data={"format": "csv", "email": p["email"]},
        )
        sub = {"customer_id": cid, "job_id": job}
        self.ev(
            tr,
            "export_job.scheduled",
            at + timedelta(seconds=1),
            "api",
            status="queued",
            subject=sub,
            data={"run_at": run_at.isoformat(), "format": "csv"},
        )
        if run_at <= self.now:
            self.ev(
                tr,
                "export_job.started",
                run_at,
                "export-worker",
                status="running",
                attempt=1,
                subject=sub,
                data={"format": "csv"},
            )
            self.ev(
                tr,
                "export_job.done",
                run_at + timedelta(minutes=4),
                "export-worker",
                status="done",
                attempt=1,
                subject=sub,
                data={"rows": 1840},
            )
        return tr

    def login_and_plan(self, p: dict[str, Any], at: datetime) -> str:
        tr = self._id("tr_")
        cid = p["customer_id"]
        ok = self.rng.random() > 0.15
        self.ev(
            tr,
            "login.succeeded" if ok else "login.failed",
            at,
            "web",
            actor="customer",
            status="done" if ok else "failed",
            subject={"customer_id": cid},
            data={"email": p["email"], "ip": p["ip"], "method": "password", "mfa": ok},
            error=None
            if ok
            else {"code": "INVALID_PASSWORD", "message": f"wrong password for {p['email']}"},
        )
        if ok and self.rng.random() < 0.4:
            self.ev(
                tr,
                "plan.changed",
                at + timedelta(minutes=3),
                "web",
                actor="customer",
                status="done",
                subject={"customer_id": cid},
                data={
                    "from_plan": "free",
                    "to_plan": "team",
                    "seats": 5,
                    "card": {"brand": "visa", "number": p["card"], "exp": "01/28"},
                },
            )
            job = self._id("job_", 5)
            sub = {"customer_id": cid, "job_id": job}
            hook = {"url": f"https://hooks.customer.example/in?secret={self._id('', 12)}"}
            self.ev(
                tr,
                "webhook.attempt",
                at + timedelta(minutes=3, seconds=1),
                "webhooks",
                status="running",
                attempt=1,
                subject=sub,
                data={**hook, "http_status": 503},
                error={"code": "WEBHOOK_HTTP_5XX", "message": "endpoint answered 503"},
            )
            self.ev(
                tr,
                "webhook.delivered",
                at + timedelta(minutes=8),
                "webhooks",
                status="done",
                attempt=2,
                subject=sub,
                data={**hook, "http_status": 200},
            )
        return tr

    def webhook_failed(self, p: dict[str, Any], at: datetime) -> str:
        """A plan change whose webhook the customer's endpoint refused until the retries ran
        out: "my endpoint never received the event"."""
        tr, job = self._id("tr_"), self._id("job_", 5)
        cid = p["customer_id"]
        self.ev(
            tr,
            "plan.changed",
            at,
            "web",
            actor="customer",
            status="done",
            subject={"customer_id": cid},
            data={"from_plan": "team", "to_plan": "business", "seats": 12},
        )
        sub = {"customer_id": cid, "job_id": job}
        hook = {"url": f"https://hooks.customer.example/in?secret={self._id('', 12)}"}
        t = at + timedelta(seconds=1)
        for attempt, wait_minutes in ((1, 0), (2, 5), (3, 30)):
            t += timedelta(minutes=wait_minutes)
            self.ev(
                tr,
                "webhook.attempt",
                t,
                "webhooks",
                status="running",
                attempt=attempt,
                subject=sub,
                data={**hook, "http_status": 503, "duration_ms": 412},
                error={"code": "WEBHOOK_HTTP_5XX", "message": "endpoint answered 503"},
            )
        self.ev(
            tr,
            "webhook.failed",
            t + timedelta(seconds=1),
            "webhooks",
            status="failed",
            attempt=3,
            subject=sub,
            data={**hook, "http_status": 503},
            error={"code": "WEBHOOK_HTTP_5XX", "message": "endpoint answered 503, giving up"},
        )
        return tr

    def login_locked(self, p: dict[str, Any], at: datetime) -> str:
        """Wrong passwords a minute apart, each its own trace, until the account locks: "I
        can't log in". Returns the trace of the attempt that found the account locked."""
        tr = ""
        for n in range(5):
            tr = self._id("tr_")
            locked = n == 4
            self.ev(
                tr,
                "login.failed",
                at + timedelta(minutes=n),
                "web",
                actor="customer",
                status="failed",
                subject={"customer_id": p["customer_id"]},
                data={"email": p["email"], "ip": p["ip"], "method": "password", "mfa": False},
                error={
                    "code": "ACCOUNT_LOCKED" if locked else "INVALID_PASSWORD",
                    "message": f"{'locked' if locked else 'wrong password'} for {p['email']}",
                },
            )
        return tr


def generate(
    customers: int = 1000, days: int = 30, seed: int = 7, now: datetime | None = None
) -> DemoTraffic:
    """Build the demo's traffic: the named support cases plus background load."""
    gen = _Gen(seed, (now or datetime.now(UTC)).replace(microsecond=0))
    now_ = gen.now
    hl = gen.out.highlights
    people = [gen.person(f"{48291 + i}") for i in range(max(customers, 8))]
    gen.out.customers = {p["customer_id"] for p in people}
    hl["signup email timed out, retried, then sent"] = gen.signup(
        people[0], now_ - timedelta(hours=3), "timeout_then_sent"
    )
    hl["signup email bounced after a retry"] = gen.signup(
        people[1], now_ - timedelta(hours=2), "bounce"
    )
    hl["password reset"] = gen.password_reset(people[2], now_ - timedelta(minutes=50))
    hl["payment retry finally failed"] = gen.billing_retry(
        people[3], now_ - timedelta(days=3), final_ok=False
    )
    hl["import stuck in running"] = gen.import_job(people[4], now_ - timedelta(hours=5), True)
    hl["signup whose email job never started"] = gen.signup(
        people[5], now_ - timedelta(minutes=40), "never_started"
    )
    hl["signup older than retention"] = gen.signup(people[6], now_ - timedelta(days=420), "sent")
    flows: list[Callable[[dict[str, Any], datetime], str]] = [
        lambda p, at: gen.signup(
            p, at, gen.rng.choice(["sent", "sent", "sent", "timeout_then_sent", "bounce"])
        ),
        gen.password_reset,
        lambda p, at: gen.billing_retry(p, at, final_ok=gen.rng.random() < 0.7),
        lambda p, at: gen.import_job(p, at, stuck=gen.rng.random() < 0.05),
        gen.login_and_plan,
        gen.login_and_plan,
    ]
    span = timedelta(days=days).total_seconds()
    for p in people[7:]:
        for _ in range(gen.rng.randint(1, 3)):
            at = now_ - timedelta(seconds=gen.rng.uniform(3600 * 6, span))
            gen.rng.choice(flows)(p, at)
    # After the background traffic, so adding a case leaves the other traces as they were.
    hl["data export scheduled for tonight"] = gen.scheduled_export(
        people[7], now_ - timedelta(minutes=20)
    )
    hl["webhook failed, customer endpoint gave 503"] = gen.webhook_failed(
        people[8], now_ - timedelta(hours=4)
    )
    hl["wrong passwords, then account locked"] = gen.login_locked(
        people[9], now_ - timedelta(minutes=15)
    )
    gen.out.events.sort(key=lambda e: e["occurred_at"])
    return gen.out
