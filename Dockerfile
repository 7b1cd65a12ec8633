# One peerbroker node: `docker run peerbroker --node-id n1 --nats nats://... --module dist/examples/bank/index.js`.
# The arguments after the image name are those of `peerbroker start` (see docker-compose.yml).

# Build: every dependency, generated types, tsc -> dist/.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing here needs an install script; the build runs below, once the sources are in.
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

# Run: production dependencies, the compiled code and the .proto files it loads at run time.
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
USER node
# Conventional gRPC port of the first node; compose sets --listen per node.
EXPOSE 7001
# SIGTERM drains and stops the broker; node runs as PID 1 and handles it itself.
ENTRYPOINT ["node", "dist/src/cli/main.js", "start"]
