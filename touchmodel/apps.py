from django.apps import AppConfig


class TouchmodelConfig(AppConfig):
    name = "touchmodel"
