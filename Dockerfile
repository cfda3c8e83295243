# One image for every finops process; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/finops
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY finops/__init__.py finops/__init__.py
COPY dashboards/__init__.py dashboards/__init__.py
RUN pip install .  && pip uninstall -y finops
COPY finops finops
COPY dashboards dashboards
RUN pip install --no-deps .

RUN useradd --system --home-dir /var/lib/finops --create-home finops
USER finops
WORKDIR /var/lib/finops
ENV FINOPS_CONFIG=/etc/finops/finops.yaml
ENTRYPOINT ["finops"]
CMD ["--help"]
