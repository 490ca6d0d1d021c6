from __future__ import annotations

import uuid

import django.core.serializers.json
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0012_status_callbacks"), ("tenants", "0002_account_number_quota")]

    operations: list = [
        migrations.CreateModel(
            name="SimulatedCarrierRule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "match",
                    models.CharField(
                        help_text="An E.164 number, or a prefix ending in * (+1555*): exact wins, then longest.",
                        max_length=32,
                        unique=True,
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("deliver", "Delivered after a delay"),
                            ("fail", "Refused at submit (failed)"),
                            ("undelivered", "Accepted, then undelivered"),
                            ("silent", "Accepted, never acknowledged"),
                        ],
                        max_length=16,
                    ),
                ),
                ("after_ms", models.PositiveIntegerField(default=0)),
                ("error_code", models.CharField(blank=True, max_length=16)),
                ("error_text", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["match"],
            },
        ),
        migrations.CreateModel(
            name="Brand",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("display_name", models.CharField(max_length=100)),
                ("company_name", models.CharField(max_length=200)),
                (
                    "entity_type",
                    models.CharField(
                        choices=[
                            ("private_profit", "Private company"),
                            ("public_profit", "Public company"),
                            ("non_profit", "Non-profit"),
                            ("government", "Government"),
                            ("sole_proprietor", "Sole proprietor"),
                        ],
                        default="private_profit",
                        max_length=20,
                    ),
                ),
                ("ein", models.CharField(blank=True, help_text="Tax id (US EIN).", max_length=20)),
                ("website", models.CharField(blank=True, max_length=200)),
                (
                    "vertical",
                    models.CharField(blank=True, help_text="Industry, e.g. retail, healthcare.", max_length=64),
                ),
                ("email", models.EmailField(blank=True, max_length=254)),
                ("country", models.CharField(default="US", max_length=2)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending review"), ("approved", "Approved"), ("rejected", "Rejected")],
                        default="pending",
                        max_length=16,
                    ),
                ),
                (
                    "review_note",
                    models.CharField(blank=True, help_text="Why it was rejected, for the customer.", max_length=500),
                ),
                ("reviewed_at", models.DateTimeField(blank=True, null=True)),
                ("reviewed_by", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Campaign",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(max_length=100)),
                (
                    "use_case",
                    models.CharField(
                        choices=[
                            ("2fa", "Two-factor authentication"),
                            ("account_notification", "Account notifications"),
                            ("customer_care", "Customer care"),
                            ("delivery_notification", "Delivery notifications"),
                            ("marketing", "Marketing"),
                            ("mixed", "Mixed"),
                            ("public_service", "Public service announcement"),
                        ],
                        max_length=32,
                    ),
                ),
                ("description", models.TextField(max_length=2000)),
                ("sample_messages", models.JSONField(default=list, help_text="One to five example messages.")),
                ("message_flow", models.TextField(help_text="How recipients opt in.", max_length=2000)),
                ("opt_in_message", models.CharField(blank=True, help_text="Sent in reply to START.", max_length=320)),
                ("opt_out_message", models.CharField(blank=True, help_text="Sent in reply to STOP.", max_length=320)),
                ("help_message", models.CharField(blank=True, help_text="Sent in reply to HELP.", max_length=320)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending review"), ("approved", "Approved"), ("rejected", "Rejected")],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("review_note", models.CharField(blank=True, max_length=500)),
                ("reviewed_at", models.DateTimeField(blank=True, null=True)),
                ("reviewed_by", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
                (
                    "brand",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="campaigns", to="telephony.brand"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="MessagingProfile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("name", models.CharField(max_length=100)),
                ("description", models.CharField(blank=True, max_length=500)),
                (
                    "callback_url",
                    models.CharField(blank=True, help_text="Receives the message.* events.", max_length=2000),
                ),
                (
                    "callback_url2",
                    models.CharField(
                        blank=True, help_text="Failover: used when an attempt to callback_url fails.", max_length=2000
                    ),
                ),
                (
                    "number_pool_enabled",
                    models.BooleanField(
                        default=True,
                        help_text="Messages sent with the profile (no `from`) pick a sender from its numbers.",
                    ),
                ),
                (
                    "sticky_sender",
                    models.BooleanField(
                        default=True,
                        help_text="A destination keeps getting messages from the number that last wrote to it.",
                    ),
                ),
                ("long_code_weight", models.PositiveIntegerField(default=1)),
                ("toll_free_weight", models.PositiveIntegerField(default=1)),
                (
                    "skip_unhealthy",
                    models.BooleanField(default=True, help_text="Pool senders whose recent messages failed wait."),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
            ],
            options={
                "ordering": ["name", "id"],
            },
        ),
        migrations.CreateModel(
            name="MessagingNumber",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.CharField(max_length=16)),
                ("toll_free", models.BooleanField(default=False)),
                ("next_slot_at", models.DateTimeField(blank=True, null=True)),
                ("consecutive_failures", models.PositiveIntegerField(default=0)),
                ("last_failure_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="numbers",
                        to="telephony.campaign",
                    ),
                ),
                (
                    "phone_number",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messaging",
                        to="telephony.phonenumber",
                    ),
                ),
                (
                    "profile",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="numbers",
                        to="telephony.messagingprofile",
                    ),
                ),
            ],
            options={
                "ordering": ["number", "id"],
            },
        ),
        migrations.CreateModel(
            name="Message",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "direction",
                    models.CharField(choices=[("outbound", "Outbound"), ("inbound", "Inbound")], max_length=8),
                ),
                ("from_number", models.CharField(max_length=32)),
                ("to_number", models.CharField(max_length=32)),
                ("text", models.TextField()),
                ("encoding", models.CharField(choices=[("GSM-7", "GSM-7"), ("UCS-2", "UCS-2")], max_length=8)),
                ("segments", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("sending", "Sending"),
                            ("sent", "Sent"),
                            ("delivered", "Delivered"),
                            ("failed", "Failed"),
                            ("undelivered", "Undelivered"),
                            ("received", "Received"),
                        ],
                        max_length=16,
                    ),
                ),
                ("error_code", models.CharField(blank=True, max_length=16)),
                ("error_text", models.CharField(blank=True, max_length=200)),
                ("thread", models.UUIDField()),
                (
                    "callback_url",
                    models.CharField(
                        blank=True, help_text="From the send request; wins the profile's.", max_length=2000
                    ),
                ),
                ("carrier", models.CharField(blank=True, max_length=32)),
                ("carrier_message_id", models.CharField(blank=True, max_length=64)),
                (
                    "auto_reply",
                    models.CharField(blank=True, help_text="help, stop or start: sent by the platform.", max_length=8),
                ),
                ("send_after", models.DateTimeField(blank=True, help_text="The sender's throughput slot.", null=True)),
                ("history", models.JSONField(default=list, encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ("created_at", models.DateTimeField()),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "finished_at",
                    models.DateTimeField(blank=True, help_text="Delivered, failed or undelivered.", null=True),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="telephony.campaign",
                    ),
                ),
                (
                    "phone_number",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="telephony.phonenumber",
                    ),
                ),
                (
                    "profile",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="messages",
                        to="telephony.messagingprofile",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="OptOut",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.CharField(max_length=32)),
                ("keyword", models.CharField(max_length=16)),
                (
                    "via_number",
                    models.CharField(blank=True, help_text="The account's number it was sent to.", max_length=32),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="brand",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "approved", "rejected"])),
                name="telephony_brand_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "approved", "rejected"])),
                name="telephony_campaign_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="messagingprofile",
            constraint=models.UniqueConstraint(
                fields=("account", "name"), name="telephony_messagingprofile_name_unique"
            ),
        ),
        migrations.AddIndex(
            model_name="messagingnumber",
            index=models.Index(fields=["profile", "toll_free"], name="telephony_msgnumber_pool"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["account", "-created_at", "-id"], name="telephony_message_log"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["account", "thread", "created_at"], name="telephony_message_thread"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["account", "direction", "created_at"], name="telephony_message_daily"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["profile", "to_number", "-created_at"], name="telephony_message_sticky"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["carrier", "carrier_message_id"], name="telephony_message_carrier_id"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status", "queued")), fields=["send_after"], name="telephony_message_due"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status", "sending")), fields=["updated_at"], name="telephony_message_sending"
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status__in", ["queued", "sending", "sent", "delivered", "failed", "undelivered", "received"])
                ),
                name="telephony_message_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.CheckConstraint(
                condition=models.Q(("direction__in", ["outbound", "inbound"])), name="telephony_message_direction_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="optout",
            constraint=models.UniqueConstraint(
                fields=("account", "number"), name="telephony_optout_account_number_unique"
            ),
        ),
    ]
