import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

// The direction of imports (lower layers never import higher ones), checked per folder:
// common <- storage, transport, security <- api, dashboard, transfer, alerts <- css, ess <- ems <- app <- admin, sim <- cmd
const LAYERS = [['common'], ['storage', 'transport', 'security'], ['api', 'dashboard', 'transfer', 'alerts'], ['css', 'ess'], ['ems'], ['app'], ['admin', 'sim']]
// Peers that must stay apart too: the cloud and the edge service know nothing of each other, and
// neither do the cloud and edge parts of an extension; its common part knows neither service.
const APART = {
  css: ['ess'],
  ess: ['css'],
  'ems/cloud': ['ess', 'edge'],
  'ems/edge': ['css', 'cloud'],
  'ems/common': ['css', 'ess', 'cloud', 'edge']
}
const rule = (folder, higher) => ({
  files: [`src/${folder}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: higher.map((h) => ({ group: [`**/${h}/*`, `**/${h}/**`], message: `src/${folder} may not import ${h} (see the layer order in eslint.config.js)` }))
    }]
  }
})
const layering = LAYERS.flatMap((layer, i) => layer.flatMap((folder) => {
  const higher = [...LAYERS.slice(i + 1).flat(), 'cmd']
  const subs = Object.keys(APART).filter((k) => k.startsWith(`${folder}/`))
  return [rule(folder, [...higher, ...(APART[folder] ?? [])]), ...subs.map((sub) => rule(sub, [...higher, ...APART[sub]]))]
}))

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**'] }),
  {
    files: ['**/*.ts', 'ui/**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `const X = {...} as const` plus `type X` is our enum replacement (anchor-aesthetics 3.4).
      '@typescript-eslint/no-redeclare': 'off',
      'no-void': ['error', { allowAsStatement: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports' }]
    }
  },
  {
    // Lines stay readable: code wraps at 120 (long messages and URLs may run on). Formatted once
    // with prettier (printWidth 110) and eslint --fix; this rule keeps it so.
    files: ['src/**/*.ts', 'cmd/**/*.ts', 'harness/**/*.ts'],
    rules: {
      '@stylistic/max-len': ['error', {
        code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true
      }]
    }
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-syntax': ['error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports' },
        { selector: "NewExpression[callee.name='Error']", message: 'Throw a SyncError subclass with a stable code (src/common/errors.ts)' }]
    }
  },
  ...layering,
  {
    // tap tracks every t.test() itself; awaiting each would serialize the suite for nothing.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' }
  }
]
