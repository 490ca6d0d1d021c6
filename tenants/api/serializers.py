from __future__ import annotations

from rest_framework import serializers

from tenants.models import Account, ApiKey, AuditEntry, Membership, Role


class AccountSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role in this account; `developer` for API keys.")

    class Meta:
        model = Account
        fields = ["id", "name", "slug", "status", "created_at", "role"]

    def get_role(self, account) -> str:
        return self.context["credential"].role


class UserSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)


class MembershipSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MembershipCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "state",
            "read_only",
            "rate_limit",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    read_only = serializers.BooleanField(default=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    rate_limit = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEntrySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "object_repr", "before", "after"]
        read_only_fields = fields


class AuthResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    user = UserSummarySerializer()
    account = AccountSerializer()
    accounts = serializers.ListField(child=serializers.DictField(), help_text="Every account you may pick.")
