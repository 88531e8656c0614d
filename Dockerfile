# One image for every T2M process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY system-packages.txt ./
COPY scripts/ ./scripts/
RUN ./scripts/install-system-packages.sh system-packages.txt && rm -rf /var/lib/apt/lists/*
COPY . .
# Production dependencies only (no test tools, no embedded dev servers), each
# file checked against the hash pinned in requirements-prod.lock.
RUN ./scripts/install-console-deps.sh && rm -rf node_modules \
    && ./scripts/install-torch-cpu.sh pip \
    && pip install --no-cache-dir --require-hashes -r requirements-prod.lock \
    && pip install --no-cache-dir --no-deps --no-build-isolation .
ENV T2M_ENV=production HOST=0.0.0.0 PORT=8000
EXPOSE 8000
CMD ["t2m", "serve"]
