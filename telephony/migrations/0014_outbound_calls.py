from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0013_messaging"), ("tenants", "0002_account_number_quota")]

    operations = [
        migrations.CreateModel(
            name="OutboundPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "calls_per_second",
                    models.FloatField(
                        blank=True,
                        help_text="Calls dispatched per second; empty = OUTBOUND_CALLS_PER_SECOND.",
                        null=True,
                    ),
                ),
                (
                    "max_concurrent_calls",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Outbound calls up at once; empty = OUTBOUND_MAX_CONCURRENT_CALLS.",
                        null=True,
                    ),
                ),
                (
                    "max_queue_wait_s",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Longest a call waits for a dispatch slot or a free channel before it fails; "
                        "empty = OUTBOUND_MAX_QUEUE_WAIT_S.",
                        null=True,
                    ),
                ),
                (
                    "allowed_countries",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text='ISO country codes the account may call, e.g. ["US", "CA"]; empty = '
                        "OUTBOUND_ALLOWED_COUNTRIES (which, empty, allows every country).",
                    ),
                ),
                (
                    "allow_premium_rate",
                    models.BooleanField(
                        default=False,
                        help_text="Premium-rate destinations (OUTBOUND_PREMIUM_PREFIXES and numbering plans).",
                    ),
                ),
                (
                    "next_dispatch_at",
                    models.DateTimeField(blank=True, help_text="Pacing state: the next free slot.", null=True),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
            ],
            options={
                "verbose_name": "outbound policy",
                "verbose_name_plural": "outbound policies",
                "constraints": [
                    models.UniqueConstraint(fields=("account",), name="telephony_outboundpolicy_one_per_account"),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("calls_per_second__isnull", True), ("calls_per_second__gt", 0), _connector="OR"
                        ),
                        name="telephony_outboundpolicy_rate_positive",
                    ),
                ],
            },
        ),
        migrations.RemoveConstraint(model_name="callwakeup", name="telephony_callwakeup_kind_valid"),
        migrations.AlterField(
            model_name="callwakeup",
            name="kind",
            field=models.CharField(
                choices=[
                    ("switch", "Switch event"),
                    ("timer", "Flow timer"),
                    ("limit", "Maximum call length"),
                    ("unhold", "Hold timeout"),
                    ("control", "Call control"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="callwakeup",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["switch", "timer", "limit", "unhold", "control"])),
                name="telephony_callwakeup_kind_valid",
            ),
        ),
    ]
