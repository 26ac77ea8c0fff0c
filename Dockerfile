# asyncback node image. Where a registry is reachable the default base works as is; on machines
# with no registry, scripts/build-image makes local/py311-base:bookworm from Debian packages
# (mmdebstrap) and installs the project's wheels offline.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 LOG_FORMAT=json PATH=/opt/asyncback/bin:$PATH
COPY wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/asyncback \
 && /opt/asyncback/bin/pip install --no-index --find-links /tmp/wheelhouse asyncback \
 && rm -rf /tmp/wheelhouse
WORKDIR /data
EXPOSE 30333 9944 9615
ENTRYPOINT ["asyncback"]
CMD ["--help"]
