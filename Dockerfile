# One image for every T2M process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY system-packages.txt ./
COPY scripts/ ./scripts/
RUN ./scripts/install-system-packages.sh system-packages.txt && rm -rf /var/lib/apt/lists/*
COPY . .
RUN ./scripts/install-torch-cpu.sh pip && pip install --no-cache-dir .
ENV T2M_ENV=production HOST=0.0.0.0 PORT=8000
EXPOSE 8000
CMD ["t2m", "serve"]
