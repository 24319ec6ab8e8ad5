FROM python:3.11-slim
WORKDIR /app
# The locked versions first (every file's hash checked), then the project itself without resolving again.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY broker ./broker
COPY matching ./matching
COPY workers ./workers
COPY adapters ./adapters
RUN pip install --no-cache-dir --no-deps .
RUN useradd --system broker
USER broker
EXPOSE 8000
CMD ["broker", "serve", "--host", "0.0.0.0"]
