// Lint: ESLint's recommended rules and typescript-eslint's, over the sources, tests and demo. Formatting is
// prettier's job (.prettierrc.json); `npm run lint` checks both and CI runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Unused arguments keep their place in a callback's signature when they start with "_".
      // Input checks reject control characters on purpose.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
