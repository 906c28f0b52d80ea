export const demoPassword = "e2e-demo-password";
