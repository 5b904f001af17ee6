# aftershock as a sidecar: a chaos proxy in front of one service, configured by AFTERSHOCK_* env.
#
#   docker build -t aftershock .
#   docker run --rm -p 8080:8080 -p 127.0.0.1:8081:8081 -v "$PWD/rec:/data" \
#     -e AFTERSHOCK_TARGET=http://api:3000 -e AFTERSHOCK_PROFILE=flaky aftershock
#
# See the README, "aftershock as a container and a sidecar" for the Compose and Kubernetes sidecar examples.

# ---- build: dev dependencies + TypeScript compile ------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are here; the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies + compiled output, non-root ---------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    AFTERSHOCK_LISTEN=0.0.0.0:8080 \
    AFTERSHOCK_ADMIN=0.0.0.0:8081 \
    AFTERSHOCK_RECORD=/data/aftershock.ndjson \
    AFTERSHOCK_LOG_LEVEL=info
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` runs the TypeScript build, which needs the dev dependencies we omit.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && mkdir -p /data /profiles \
 && chown node:node /data /profiles
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY profiles ./profiles

# /data: recordings (one NDJSON file per sidecar); /profiles: mount your profile files here and
# set AFTERSHOCK_PROFILE=/profiles/<file>.yaml (edits are hot-reloaded).
VOLUME ["/data"]
# Numeric (node is uid/gid 1000 in the base image): Kubernetes' runAsNonRoot can only verify a
# numeric user; with a name the pod stays in CreateContainerConfigError.
USER 1000:1000
EXPOSE 8080 8081

# Probe the control API's /healthz with node itself (slim images have no curl). The address comes
# from AFTERSHOCK_ADMIN, so an overridden port is probed where it really is; a wildcard host is
# probed on loopback. With the control API off (AFTERSHOCK_ADMIN=off, none or false, in any case,
# as `run` reads it) there is nothing to ask.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "const a=(process.env.AFTERSHOCK_ADMIN||'').trim()||'127.0.0.1:8081';if(['off','none','false'].includes(a.toLowerCase()))process.exit(0);const i=a.lastIndexOf(':');let h=a.slice(0,i);if(h.startsWith('['))h=h.slice(1,-1);if(h===''||h==='0.0.0.0')h='127.0.0.1';if(h==='::')h='::1';const q=require('http').get({host:h,port:Number(a.slice(i+1)),path:'/healthz',timeout:4000},(r)=>{r.resume();process.exit(r.statusCode===200?0:1)});q.on('timeout',()=>q.destroy(new Error('timeout')));q.on('error',()=>process.exit(1))"

# Exec form: node is PID 1 and gets SIGTERM itself; `aftershock run` drains in-flight exchanges,
# flushes the recording and exits 0.
ENTRYPOINT ["node", "/app/bin/aftershock.js"]
CMD ["run"]
