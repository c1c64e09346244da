/**
 * The GraphQL client: urql over HTTP for queries and mutations, graphql-ws for
 * subscriptions (live data is pushed, never polled). The token goes in the
 * Authorization header and in the WebSocket's connection params.
 */
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient } from "graphql-ws";
import { authHeaders } from "./session.ts";

export function createApiClient(token: string | null, onUnauthorized: () => void) {
  const ws = createWsClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => (token ? { authorization: `Bearer ${token}` } : {}),
    lazy: true,
    retryAttempts: Infinity,
    // The server closes refused connections with 4403.
    shouldRetry: (event) => !(event && typeof event === "object" && "code" in event && (event as CloseEvent).code === 4403),
    on: {
      closed: (event) => {
        if ((event as CloseEvent | undefined)?.code === 4403) onUnauthorized();
      },
    },
  });
  const client = new Client({
    url: "/graphql",
    // POST only: the server's CSRF protection refuses GET requests without a custom header.
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    fetchOptions: () => ({ headers: authHeaders(token) }),
    exchanges: [
      mapExchange({
        onError(error) {
          if (error.response?.status === 401 || error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) onUnauthorized();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, dispose: () => void ws.dispose() };
}
