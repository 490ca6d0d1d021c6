from __future__ import annotations

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0011_events_delivery_index_trim")]

    # Status callbacks: hidden per-account-and-origin "callback" endpoints, so callbacks share the delivery engine.
    operations: list = [
        migrations.CreateModel(
            name="CallbackSigningSecret",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("secret_encrypted", models.TextField()),
                ("previous_secret_encrypted", models.TextField(blank=True)),
                ("previous_secret_expires_at", models.DateTimeField(blank=True, null=True)),
                ("secret_rotated_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.RemoveConstraint(
            model_name="delivery",
            name="telephony_delivery_event_required",
        ),
        migrations.AddField(
            model_name="delivery",
            name="call",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="callback_deliveries",
                to="telephony.call",
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="fallback_url",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Where the attempt after a failed one goes.",
                max_length=2000,
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="method",
            field=models.CharField(blank=True, db_default="", default="", max_length=6),
        ),
        migrations.AddField(
            model_name="delivery",
            name="object_id",
            field=models.CharField(blank=True, db_default="", default="", help_text="A public id.", max_length=64),
        ),
        migrations.AddField(
            model_name="delivery",
            name="object_type",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="delivery",
            name="params",
            field=models.JSONField(
                blank=True,
                encoder=django.core.serializers.json.DjangoJSONEncoder,
                help_text="The callback's fields.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="payload_format",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="form (body, or query string for GET) or json.",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="kind",
            field=models.CharField(
                choices=[
                    ("event", "Event"),
                    ("test", "Test send"),
                    ("status_callback", "Status callback"),
                    ("extension_hook", "Extension event hook"),
                    ("message_callback", "Message callback"),
                ],
                default="event",
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("call__isnull", False)), fields=["call"], name="telephony_delivery_call"
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("object_type", ""), _negated=True),
                fields=["account", "object_type", "object_id"],
                name="telephony_delivery_object",
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("kind__in", ["event", "test"]), _negated=True),
                fields=["created_at"],
                name="telephony_delivery_callback",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "event"), _negated=True), ("event__isnull", False), _connector="OR"
                ),
                name="telephony_delivery_event_required",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["event", "test"]), ("params__isnull", False), _connector="OR"),
                name="telephony_delivery_callback_params_required",
            ),
        ),
        migrations.AddField(
            model_name="callbacksigningsecret",
            name="account",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenants.account"
            ),
        ),
        migrations.AddField(
            model_name="delivery",
            name="url",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="A callback's URL (its endpoint stands for the URL's origin).",
                max_length=2000,
            ),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="purpose",
            field=models.CharField(
                choices=[("webhook", "Webhook endpoint"), ("callback", "Callback URL (hidden)")],
                default="webhook",
                max_length=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookendpoint",
            constraint=models.UniqueConstraint(
                condition=models.Q(("purpose", "callback")),
                fields=("account", "url"),
                name="telephony_webhookendpoint_callback_url",
            ),
        ),
        migrations.AddConstraint(
            model_name="webhookendpoint",
            constraint=models.CheckConstraint(
                condition=models.Q(("purpose__in", ["webhook", "callback"])),
                name="telephony_webhookendpoint_purpose_valid",
            ),
        ),
    ]
