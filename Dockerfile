# asyncback node image. Where a registry is reachable the default base works as is; on machines
# with no registry, scripts/build-image makes local/py311-base:bookworm from Debian packages
# (mmdebstrap) and installs the project's wheels offline.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
# Settings first and the project last, so a rebuild after a code change redoes two steps only.
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 LOG_FORMAT=json PATH=/opt/asyncback/bin:$PATH
WORKDIR /data
EXPOSE 30333 9944 9615
ENTRYPOINT ["asyncback"]
CMD ["--help"]
COPY wheelhouse/deps /tmp/wheelhouse/deps
RUN python3 -m venv /opt/asyncback \
 && /opt/asyncback/bin/pip install -q --no-index --no-cache-dir /tmp/wheelhouse/deps/*.whl \
 && rm -rf /tmp/wheelhouse
COPY wheelhouse/app /tmp/wheelhouse/app
RUN /opt/asyncback/bin/pip install -q --no-index --no-cache-dir --no-deps /tmp/wheelhouse/app/*.whl \
 && rm -rf /tmp/wheelhouse
