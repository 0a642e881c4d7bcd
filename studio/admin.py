from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Project, ProjectFile, User

admin.site.register(User, UserAdmin)


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
