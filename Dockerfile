# The tickwise CLI in a small image; docker-compose.yml runs its services from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# the README is the package's long description (pyproject.toml)
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY replay ./replay
RUN pip install . && useradd --create-home --uid 10001 tickwise

USER tickwise
WORKDIR /home/tickwise
CMD ["tickwise", "--help"]
