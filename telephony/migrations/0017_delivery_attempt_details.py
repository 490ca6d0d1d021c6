from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telephony", "0016_sip_edge")]

    operations: list = [
        migrations.AddField(
            model_name="deliveryattempt",
            name="request_headers",
            field=models.JSONField(blank=True, default=dict, help_text="The headers sent (webhook-id, ...)."),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="response_headers",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The response's headers, at most 50, each value cut at 500 characters.",
            ),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="request_url",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Where it went, if not the endpoint's URL (a fallback).",
                max_length=4000,
            ),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="request_method",
            field=models.CharField(blank=True, default="", help_text="The method, if not POST.", max_length=8),
        ),
    ]
