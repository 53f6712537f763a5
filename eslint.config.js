// ESLint for faced/web's JavaScript (`make lint-js`): browser ES modules served as they are
// (no bundler), and the classic script of the /docs page.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["faced/web/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-var": "error",
      "prefer-const": "error",
      "no-shadow": "error",
      "no-implicit-coercion": ["error", { allow: ["!!"] }],
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      // Each page part owns its state in an object: module scope holds constants only.
      "no-restricted-syntax": [
        "error",
        {
          selector: "Program > VariableDeclaration[kind!='const']",
          message: "module-level mutable state: keep it in the object that owns it",
        },
        {
          selector: "Program > ExportNamedDeclaration > VariableDeclaration[kind!='const']",
          message: "module-level mutable state: keep it in the object that owns it",
        },
      ],
    },
  },
  {
    // /docs loads docs.js as a classic deferred script (no modules on that page).
    files: ["faced/web/static/docs/**/*.js"],
    languageOptions: { sourceType: "script" },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.node } },
  },
];
