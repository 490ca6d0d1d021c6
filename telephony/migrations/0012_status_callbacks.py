from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0011_events_delivery_index_trim")]

    # Status callbacks: hidden per-account-and-origin "callback" endpoints, so callbacks share the delivery engine.
    operations: list = [
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
