from __future__ import annotations

from django.contrib import admin

from .models import Build, Step


class StepInline(admin.TabularInline):
    model = Step
    fields = ("number", "instruction", "status", "cached", "duration_ms")
    readonly_fields = fields
    extra = 0


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "number", "status", "queued_at", "started_at", "finished_at", "worker")
    list_filter = ("status",)
    readonly_fields = ("revision", "heartbeat_at", "worker", "error")
    inlines = [StepInline]
