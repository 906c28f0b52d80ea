//! Administration, for agents with the admin role: sites, agents, teams, API keys, mail,
//! translation, and upkeep (bans, webhooks, data retention). Every server function under here
//! starts with `require_admin`, so an agent without the role is refused whether they open a
//! page or call an endpoint.

pub mod agents;
pub mod api;
pub mod mail;
pub mod sites;
pub mod teams;
pub mod translation;
pub mod upkeep;
