// The demo app (deploy/demo-app) behind nginx with the SHIPPED two-part recipe:
// deploy/nginx/comet-http.conf included in http { } (its upstream address pointed at the
// test's sidecar, nothing else changed) and deploy/nginx/comet-locations.conf included
// unchanged in the server { }; the PHP pages run in `php -S` behind `location /` (the
// stand-in for php-fpm, which is not installed here). Every comet.js transport forced in
// turn, chat lines posted through the PHP form and counted on a second page, the
// dashboard, the private inbox. See lib/deploy_matrix.mjs. (The upstream keepalive is
// checked by tests/integration/publish_proxy.test.mjs.)
//
// Needs nginx, php-cli, chromium.

import { DEMO_APP, runDeployMatrix } from './lib/deploy_matrix.mjs';
import { startNginx, startPhpServer } from './lib/webservers.mjs';

runDeployMatrix({
  recipe: 'nginx',
  expectSapi: 'cli-server',
  startFront: async ({ sidecar, appEnv }) => {
    const php = await startPhpServer({ docRoot: DEMO_APP, env: appEnv });
    try {
      const nginx = await startNginx({
        upstream: `127.0.0.1:${sidecar.port}`,
        // The app: everything but /comet/. $http_host keeps the port, so the pages'
        // same-origin check (Origin against Host) holds.
        serverExtra: [
          '    location / {',
          `      proxy_pass http://127.0.0.1:${php.port};`,
          '      proxy_http_version 1.1;',
          '      proxy_set_header Connection "";',
          '      proxy_set_header Host $http_host;',
          '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
          '    }',
        ].join('\n'),
      });
      return {
        url: nginx.url,
        nginx,
        php,
        logs: () => `${nginx.output}\n${php.output}`,
        async stop() {
          await nginx.stop();
          await php.stop();
        },
      };
    } catch (err) {
      await php.stop();
      throw err;
    }
  },
});
