from __future__ import annotations

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0014_outbound_calls"), ("tenants", "0002_account_number_quota")]

    operations = [
        migrations.CreateModel(
            name="BulkCall",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(blank=True, max_length=200)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("paused", "Paused"),
                            ("completed", "Completed"),
                            ("canceled", "Canceled"),
                        ],
                        default="running",
                        max_length=16,
                    ),
                ),
                (
                    "from_number",
                    models.CharField(help_text="The caller ID of every attempt, retries included.", max_length=32),
                ),
                ("xml", models.TextField(blank=True)),
                ("url", models.CharField(blank=True, max_length=2000)),
                ("method", models.CharField(default="POST", max_length=4)),
                ("timeout_s", models.PositiveIntegerField(default=30, help_text="Ring time of each attempt.")),
                ("time_limit_s", models.PositiveIntegerField(blank=True, null=True)),
                ("calls_per_second", models.FloatField(default=1.0)),
                ("max_concurrent", models.PositiveIntegerField(default=10)),
                ("window_days", models.JSONField(blank=True, default=list)),
                ("window_start", models.TimeField(blank=True, null=True)),
                ("window_end", models.TimeField(blank=True, null=True)),
                ("time_zone", models.CharField(default="UTC", max_length=64)),
                ("retry_rules", models.JSONField(blank=True, default=dict)),
                ("tag", models.CharField(blank=True, max_length=255)),
                (
                    "total",
                    models.PositiveIntegerField(
                        default=0, help_text="Destinations accepted (do-not-call ones included)."
                    ),
                ),
                ("invalid_count", models.PositiveIntegerField(default=0)),
                ("invalid", models.JSONField(blank=True, default=list)),
                ("last_dispatch_at", models.DateTimeField(blank=True, null=True)),
                (
                    "pace_tokens",
                    models.FloatField(default=0.0, help_text="Calls the pace allows now (a token bucket)."),
                ),
                ("dispatch_claimed_until", models.DateTimeField(blank=True, null=True)),
                ("last_progress", models.JSONField(blank=True, default=dict, help_text="The counts last announced.")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="BulkCallItem",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveIntegerField(help_text="Index in the request's destination list, from 0.")),
                ("destination", models.CharField(max_length=32)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Waiting to be called"),
                            ("calling", "Call in progress"),
                            ("done", "Done"),
                            ("skipped", "Skipped (do not call)"),
                            ("canceled", "Canceled"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("outcome", models.CharField(blank=True, help_text="The last call's final status.", max_length=16)),
                ("duration", models.PositiveIntegerField(default=0)),
                (
                    "reason",
                    models.CharField(
                        blank=True, help_text="Why the last attempt was refused or failed.", max_length=300
                    ),
                ),
                ("next_attempt_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["position"],
            },
        ),
        migrations.CreateModel(
            name="ExtensionHook",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "event",
                    models.CharField(
                        choices=[
                            ("dial-in", "Dial-in (the user receives a call)"),
                            ("dial-out", "Dial-out (the user places a call)"),
                            ("answer", "Answer"),
                            ("hangup", "Hangup"),
                        ],
                        max_length=16,
                    ),
                ),
                ("method", models.CharField(choices=[("GET", "GET"), ("POST", "POST")], default="POST", max_length=4)),
                ("url", models.CharField(max_length=2000)),
                ("enabled", models.BooleanField(default=True)),
                ("notes", models.CharField(blank=True, max_length=500)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["created_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="WebCallbackSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("enabled", models.BooleanField(default=True)),
                (
                    "order",
                    models.CharField(
                        choices=[
                            ("callback_first", "Call the user's phone first, then the destination"),
                            ("target_first", "Call the destination first, then the user's phone"),
                        ],
                        default="callback_first",
                        max_length=16,
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.AddField(
            model_name="bulkcall",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
            ),
        ),
        migrations.AddField(
            model_name="bulkcall",
            name="app",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="telephony.callcontrolapp",
            ),
        ),
        migrations.AddField(
            model_name="bulkcall",
            name="phone_number",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="telephony.phonenumber",
            ),
        ),
        migrations.AddField(
            model_name="bulkcallitem",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
            ),
        ),
        migrations.AddField(
            model_name="bulkcallitem",
            name="bulk_call",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="items", to="telephony.bulkcall"
            ),
        ),
        migrations.AddField(
            model_name="bulkcallitem",
            name="last_call",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="telephony.call",
            ),
        ),
        migrations.AddField(
            model_name="extensionhook",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
            ),
        ),
        migrations.AddField(
            model_name="extensionhook",
            name="sip_user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="event_hooks", to="telephony.sipuser"
            ),
        ),
        migrations.AddField(
            model_name="webcallbacksettings",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
            ),
        ),
        migrations.AddIndex(
            model_name="bulkcall",
            index=models.Index(fields=["status"], name="telephony_bulkcall_status"),
        ),
        migrations.AddConstraint(
            model_name="bulkcall",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["running", "paused", "completed", "canceled"])),
                name="telephony_bulkcall_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="bulkcall",
            constraint=models.CheckConstraint(
                condition=models.Q(("calls_per_second__gt", 0)), name="telephony_bulkcall_rate_positive"
            ),
        ),
        migrations.AddIndex(
            model_name="bulkcallitem",
            index=models.Index(
                fields=["bulk_call", "state", "next_attempt_at", "position"], name="telephony_bulkitem_due"
            ),
        ),
        migrations.AddConstraint(
            model_name="bulkcallitem",
            constraint=models.UniqueConstraint(
                fields=("bulk_call", "position"), name="telephony_bulkcallitem_position_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="bulkcallitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("state__in", ["pending", "calling", "done", "skipped", "canceled"])),
                name="telephony_bulkcallitem_state_valid",
            ),
        ),
        migrations.AddIndex(
            model_name="extensionhook",
            index=models.Index(fields=["sip_user", "event"], name="telephony_exthook_user_event"),
        ),
        migrations.AddConstraint(
            model_name="extensionhook",
            constraint=models.CheckConstraint(
                condition=models.Q(("event__in", ["dial-in", "dial-out", "answer", "hangup"])),
                name="telephony_extensionhook_event_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="extensionhook",
            constraint=models.CheckConstraint(
                condition=models.Q(("method__in", ["GET", "POST"])), name="telephony_extensionhook_method_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="webcallbacksettings",
            constraint=models.UniqueConstraint(
                fields=("account",), name="telephony_webcallbacksettings_one_per_account"
            ),
        ),
        migrations.AddConstraint(
            model_name="webcallbacksettings",
            constraint=models.CheckConstraint(
                condition=models.Q(("order__in", ["callback_first", "target_first"])),
                name="telephony_webcallbacksettings_order_valid",
            ),
        ),
    ]
