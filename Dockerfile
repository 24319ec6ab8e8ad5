FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY matching ./matching
COPY workers ./workers
COPY adapters ./adapters
RUN pip install --no-cache-dir .
RUN useradd --system broker
USER broker
EXPOSE 8000
CMD ["broker", "serve", "--host", "0.0.0.0"]
