from __future__ import annotations

from django.contrib import admin

from .models import Project, ProjectFile


class ProjectFileInline(admin.TabularInline):
    model = ProjectFile
    fields = ("path", "mode", "blob", "updated_at")
    readonly_fields = fields
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "visibility", "updated_at")
    search_fields = ("name", "owner__username")
    inlines = [ProjectFileInline]
