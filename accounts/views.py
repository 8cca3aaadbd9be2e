from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    accounts = selectors.book_summary(user=request.user)
    return render(request, "accounts/home.html", {"book": accounts})
