from .api import churn, jobs, scores

urlpatterns = [*scores.urlpatterns, *jobs.urlpatterns, *churn.urlpatterns]
