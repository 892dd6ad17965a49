// Creates (or updates) a SCRAM-SHA-512 user on the local broker, through the Admin API: the broker
// jars have no kafka-configs tool. Run by scripts/infra.sh with Java's single-file launcher:
//   java -cp "<kafka libs>/*" AddScramUser.java <bootstrap> <user> <password>
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class AddScramUser {
  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: AddScramUser <bootstrap> <user> <password>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    try (Admin admin = Admin.create(props)) {
      ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
      admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(args[1], info, args[2]))).all().get();
    }
  }
}
