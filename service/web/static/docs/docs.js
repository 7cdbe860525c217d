// Start Swagger UI on this server's OpenAPI document. A file of its own, not an inline
// script, so that the page's content security policy can allow scripts from this server only.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    // The public validator would receive the document; nothing leaves this server.
    validatorUrl: null,
  });
});
